package org.libivr;

/**
 * Loads the JNI library: the file named by the system property {@code org.libivr.library}
 * when set, else {@code libivr_java} from {@code java.library.path}.
 */
final class NativeLibrary {
  private NativeLibrary() {}

  static void load() {
    String path = System.getProperty("org.libivr.library");
    if (path != null && !path.isEmpty()) {
      System.load(path);
    } else {
      System.loadLibrary("ivr_java");
    }
  }
}
