// Fuzzes the availability connectors' parsers of outside input: delimited text (CSV with
// quoting, pipe-separated VICIdial answers), figures ([H:]MM:SS, counts) and the mapping
// of a body to an AvailabilitySample in CSV and pipe form.
//
// Input layout: the first byte picks a mapping (low 2 bits: CSV by column name with a key
// row, CSV by index, VICIdial's pipe preset, pipe with the first data row); the rest is
// the body.
//
// Checks: the parser keeps to its limits (rows, fields per row, field length); errors carry
// a message; a failed mapping never yields a sample and a successful one only figures that
// parse_figure accepts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "routing/availability.h"

namespace {

using namespace ivr::routing;

[[noreturn]] void fail(const char *what, const std::string &detail) {
  std::fprintf(stderr, "fuzz_routing_availability: %s: %s\n", what, detail.c_str());
  std::abort();
}

AvailabilityMapping mapping(uint8_t pick) {
  AvailabilityMapping m;
  FieldSource by_index;
  switch (pick & 3) {
    case 0:
      m.format = AvailabilityFormat::csv;
      m.header = true;
      m.key_value = "Sales";
      m.fields[0] = FieldSource{};
      m.fields[0]->column = "available";
      m.fields[3] = FieldSource{};
      m.fields[3]->column = "longest";
      m.fields[3]->divide_by = 1000;
      break;
    case 1:
      m.format = AvailabilityFormat::csv;
      by_index.index = 2;
      m.fields[2] = by_index;
      break;
    case 2:
      m = vicidial_in_group_status("v", {"http://h", "u", "s", "SALES", ""}).mapping;
      break;
    default:
      m.format = AvailabilityFormat::pipe;
      by_index.index = 1;
      m.fields[0] = by_index;
      m.error_prefix.clear();
      break;
  }
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char *>(data) + 1, size - 1);
  const uint8_t pick = data[0];

  for (bool csv : {true, false}) {
    auto rows = parse_delimited(body, csv ? ',' : '|', csv);
    if (!rows.ok()) {
      if (rows.error().message.rfind("line ", 0) != 0) fail("error shape", rows.error().message);
      continue;
    }
    if (rows.value().size() > kMaxDelimitedRows) fail("rows", std::to_string(rows.value().size()));
    for (const auto &row : rows.value()) {
      if (row.empty() || row.size() > kMaxDelimitedColumns)
        fail("fields per row", std::to_string(row.size()));
      for (const auto &f : row)
        if (f.size() > kMaxDelimitedField) fail("field length", std::to_string(f.size()));
    }
  }

  auto figure = parse_figure(body.substr(0, 64));
  if (!figure.ok() && figure.error().message.empty()) fail("figure", "empty error");

  const AvailabilityMapping m = mapping(pick);
  if (!validate_mapping(m).ok()) fail("mapping", validate_mapping(m).error().message);
  auto sample = map_availability(m, body);
  if (!sample.ok() && sample.error().message.empty()) fail("map", "empty error");
  return 0;
}
