package org.libivr;

/**
 * Engine options (ivr_engine_options), set fluently:
 * {@code new EngineOptions().sipPort(0).promptDir("/var/lib/ivr/prompts")}. Checked when the
 * engine is created ({@link IvrException} EINVAL names the field).
 */
public final class EngineOptions {
  private String sipAddress = "127.0.0.1";
  private int sipPort = 5060;
  private SipTransport sipTransport = SipTransport.UDP;
  private String rtpAddress;
  private int rtpPortMin = 20000;
  private int rtpPortMax = 30000;
  private int mediaThreads = 1;
  private String promptDir = ".";
  private LogLevel logLevel = LogLevel.INFO;
  private LogHandler logHandler;
  private String userAgent;

  /** IP literal to listen on; default "127.0.0.1". */
  public EngineOptions sipAddress(String v) {
    sipAddress = v;
    return this;
  }

  /** SIP port; default 5060; 0 picks a free one (read it with {@link Engine#sipPort()}). */
  public EngineOptions sipPort(int v) {
    sipPort = v;
    return this;
  }

  public EngineOptions sipTransport(SipTransport v) {
    sipTransport = v;
    return this;
  }

  /** IP literal for RTP; default (null): the SIP address. */
  public EngineOptions rtpAddress(String v) {
    rtpAddress = v;
    return this;
  }

  /** The RTP port range (the first even); default 20000-30000. */
  public EngineOptions rtpPorts(int min, int max) {
    rtpPortMin = min;
    rtpPortMax = max;
    return this;
  }

  /** Media threads, sessions sharded over them; default 1. */
  public EngineOptions mediaThreads(int v) {
    mediaThreads = v;
    return this;
  }

  /** Prompts are named relative to this directory; default ".". */
  public EngineOptions promptDir(String v) {
    promptDir = v;
    return this;
  }

  public EngineOptions logLevel(LogLevel v) {
    logLevel = v;
    return this;
  }

  /**
   * Receives the engine's log lines, from any of its threads, possibly concurrently: it must
   * be thread-safe, must not block and must not call back into the engine. Default: none.
   */
  public EngineOptions logHandler(LogHandler v) {
    logHandler = v;
    return this;
  }

  /** SIP User-Agent; default "libivr/VERSION". */
  public EngineOptions userAgent(String v) {
    userAgent = v;
    return this;
  }

  public String sipAddress() {
    return sipAddress;
  }

  public int sipPort() {
    return sipPort;
  }

  public SipTransport sipTransport() {
    return sipTransport;
  }

  public String rtpAddress() {
    return rtpAddress;
  }

  public int rtpPortMin() {
    return rtpPortMin;
  }

  public int rtpPortMax() {
    return rtpPortMax;
  }

  public int mediaThreads() {
    return mediaThreads;
  }

  public String promptDir() {
    return promptDir;
  }

  public LogLevel logLevel() {
    return logLevel;
  }

  public LogHandler logHandler() {
    return logHandler;
  }

  public String userAgent() {
    return userAgent;
  }
}
