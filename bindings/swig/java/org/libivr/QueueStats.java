package org.libivr;

/**
 * The call queue: calls waiting because no target could take them ({@link Engine#queueStats}).
 *
 * @param waiting calls in the queue now
 * @param offered of those, calls being dialled on an offered slot
 * @param oldestWaitMs the longest wait now
 * @param serviceIntervalMs the wait estimate's interval; -1 until a call left the queue
 * @param enqueued calls queued in total
 * @param served calls that left the queue for a target
 * @param abandoned callers who hung up while waiting
 * @param expired calls that reached their maximum wait
 */
public record QueueStats(int waiting, int offered, long oldestWaitMs, long serviceIntervalMs,
                         long enqueued, long served, long abandoned, long expired) {}
