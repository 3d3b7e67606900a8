package org.libivr;

import java.util.List;

/**
 * A flow document was refused (code EPARSE): {@link #problems()} lists every problem with
 * its JSON Pointer, line, column and reason.
 */
public class ValidationException extends IvrException {
  private static final long serialVersionUID = 1L;

  private final transient List<Problem> problems;

  public ValidationException(String message, List<Problem> problems) {
    super(ErrorCode.EPARSE.swigValue(), message);
    this.problems = List.copyOf(problems);
  }

  ValidationException(FlowReport report) {
    this("flow document refused: " + report.problems().size() + " problem(s)\n" + report.text(),
         report.problems());
  }

  /** Every problem, in document order. */
  public List<Problem> problems() {
    return problems;
  }
}
