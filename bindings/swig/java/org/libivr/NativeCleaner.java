package org.libivr;

import java.lang.ref.Cleaner;
import java.util.function.LongConsumer;

/** Frees the C++ object behind a proxy once the proxy is unreachable. */
final class NativeCleaner {
  private static final Cleaner CLEANER = Cleaner.create();

  private NativeCleaner() {}

  /** The action must not refer to the proxy, so it gets the pointer and the deleter only. */
  static Cleaner.Cleanable register(Object proxy, long pointer, LongConsumer delete) {
    return CLEANER.register(proxy, () -> delete.accept(pointer));
  }
}
