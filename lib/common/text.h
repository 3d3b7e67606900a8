// ASCII text helpers for protocol data (header names, tokens, JSON strings): locale-free and
// byte-based, so "Content-Type" and "content-type" compare equal whatever the C locale says.
#pragma once

#include <string>
#include <string_view>

namespace ivr::text {

constexpr char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// ASCII case-insensitive equality.
bool iequals(std::string_view a, std::string_view b);
std::string to_lower(std::string_view s);
// Without leading and trailing spaces and horizontal tabs.
std::string_view trim(std::string_view s);
// A JSON string literal, quotes included: ", \ and control characters escaped (\n, \r, \t,
// \b, \f, else \u00XX); other bytes, UTF-8 included, as they are.
std::string json_quote(std::string_view s);
void append_json_quoted(std::string &out, std::string_view s);

// Untrusted text (a peer's SDP line, a DTMF signal, a sipfrag) for an error message: at most
// `max` bytes then "...", control bytes, DEL, the quote and backslash as \xNN, between
// `quote` characters.
std::string quote_untrusted(std::string_view s, size_t max, char quote = '"');

}  // namespace ivr::text
