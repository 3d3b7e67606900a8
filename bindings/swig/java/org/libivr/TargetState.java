package org.libivr;

/**
 * A snapshot of one routing target's live state ({@link Engine#targetState}).
 *
 * @param health UP, DOWN (the health probe or a transport failure) or DRAINING
 * @param capacity the most calls it takes at once
 * @param active delivered calls in progress
 * @param reserved slots held for calls being dialled or offered
 * @param offered reservations made
 * @param answered calls it answered
 * @param completed delivered calls that ended
 * @param failed delivery attempts that failed, every reason
 * @param availabilityFresh whether fresh agent data is present
 * @param idleAgents idle agents as routing counts them (0 when stale)
 */
public record TargetState(TargetHealth health, int capacity, int active, int reserved,
                          long offered, long answered, long completed, long failed,
                          boolean availabilityFresh, long idleAgents) {}
