package org.libivr;

import java.nio.charset.StandardCharsets;

/** Strings cross JNI as UTF-8 bytes (JNI's own strings use modified UTF-8). */
final class Utf8 {
  private Utf8() {}

  static byte[] encode(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  static String decode(byte[] b) {
    return b == null ? null : new String(b, StandardCharsets.UTF_8);
  }
}
