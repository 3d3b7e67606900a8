package org.libivr;

/**
 * Agent availability of one routing target, as an {@link AvailabilityConnector} (or the
 * host, through {@link Engine#pushAvailability}) reports it. No figure may be negative.
 *
 * @param agentsAvailable idle agents ready for a call
 * @param agentsLoggedIn agents logged in
 * @param callsWaiting calls waiting in the dialing system itself
 * @param longestWaitS the longest of those waits, in seconds
 */
public record Availability(int agentsAvailable, int agentsLoggedIn, int callsWaiting,
                           int longestWaitS) {
  public Availability {
    check("agentsAvailable", agentsAvailable);
    check("agentsLoggedIn", agentsLoggedIn);
    check("callsWaiting", callsWaiting);
    check("longestWaitS", longestWaitS);
  }

  /** Only the idle agents known (the other figures 0). */
  public static Availability ofAgentsAvailable(int agentsAvailable) {
    return new Availability(agentsAvailable, 0, 0, 0);
  }

  private static void check(String field, int value) {
    if (value < 0) {
      throw new IllegalArgumentException("availability." + field + ": " + value
          + " is negative");
    }
  }
}
