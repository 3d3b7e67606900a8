package org.libivr;

/**
 * A libivr call failed: {@link #code()} is the C ABI's negative IVR_E* code and the message
 * is {@code ivr_error_last()}'s (it names the field and the reason).
 */
public class IvrException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final int code;

  public IvrException(int code, String message) {
    super(message);
    this.code = code;
  }

  /** Thrown from native code with the message as UTF-8 bytes. */
  IvrException(int code, byte[] utf8Message) {
    this(code, Utf8.decode(utf8Message));
  }

  /** The C error code (negative): IVR_EINVAL is -1, ... */
  public int code() {
    return code;
  }

  /** The code as a constant (EINTERNAL for a code this binding does not know). */
  public ErrorCode error() {
    return ErrorCode.of(code);
  }
}
