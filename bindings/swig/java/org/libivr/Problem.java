package org.libivr;

/**
 * One problem of a flow document: its JSON Pointer ("" for the document), 1-based line and
 * column (0 when unknown) and the reason.
 */
public record Problem(String pointer, int line, int column, String message) {
  @Override
  public String toString() {
    return "line " + line + ", column " + column + ": " + pointer + ": " + message;
  }
}
