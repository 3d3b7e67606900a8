package org.libivr;

/** A loaded version of a flow: whether it is the flow's active one, and its node count. */
public record FlowVersion(String flowId, String version, boolean active, int nodes) {}
