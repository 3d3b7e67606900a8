// AvailabilityPoller: runs availability connectors (availability.h) on the engine loop. Each
// connector polls its HTTP API every `interval` through net::HttpService, maps the answer to
// an AvailabilitySample and hands it on; after `stale_after` without a good sample it reports
// the data stale. A failed poll (transport error, HTTP status, an answer that cannot be
// mapped) is reported with the field and the reason, the previous sample is kept until it
// goes stale, and the next interval simply tries again.
//
// Threading: belongs to the loop thread of its event_base; callbacks run there. The engine
// wires on_sample to TargetPool::update_availability and on_stale to
// mark_availability_stale. The HttpService must outlive the poller.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "routing/availability.h"

struct event_base;

namespace ivr::net {
class HttpService;
}

namespace ivr::routing {

struct AvailabilityHandlers {
  std::function<void(const ConnectorConfig &, const AvailabilitySample &)> on_sample;
  // Once per stale period: `why` says since when and the last error, if any.
  std::function<void(const ConnectorConfig &, const std::string &why)> on_stale;
  // A failed poll: "connector vici: calls_waiting: column 2 'x' is not a number ...".
  std::function<void(const ConnectorConfig &, const Error &)> on_error;
};

struct ConnectorState {
  uint64_t polls = 0, samples = 0, errors = 0, skipped = 0;  // skipped: previous in flight
  std::optional<AvailabilitySample> last;                    // the last good sample
  bool stale = false;                                        // stale was reported
  std::string last_error;
};

class AvailabilityPoller {
 public:
  // Errors name the connector and field (validate_connector).
  static Result<std::unique_ptr<AvailabilityPoller>> create(event_base *base,
                                                            net::HttpService &http,
                                                            std::vector<ConnectorConfig> connectors,
                                                            AvailabilityHandlers handlers);
  ~AvailabilityPoller();  // cancels the polls in flight; no callback runs afterwards
  AvailabilityPoller(const AvailabilityPoller &) = delete;
  AvailabilityPoller &operator=(const AvailabilityPoller &) = delete;

  // Starts every connector: a first poll at once, then one per interval.
  void start();
  const ConnectorState *state(std::string_view connector) const;

 private:
  struct Impl;
  explicit AvailabilityPoller(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ivr::routing
