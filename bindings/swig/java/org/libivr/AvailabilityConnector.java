package org.libivr;

/**
 * Reports a routing target's agent availability, polled by the engine every interval
 * ({@link Engine#addAvailabilityConnector}). It runs on a daemon thread of the engine's own
 * and may block (an HTTP call to the dialing system); runs of one connector never overlap.
 * Throwing (or returning null) marks the target's agent data stale and is logged.
 */
@FunctionalInterface
public interface AvailabilityConnector {
  /** The target's figures now. */
  Availability poll() throws Exception;
}
