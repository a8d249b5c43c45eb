#pragma once
// Idempotency: what makes two submits "the same request", and where a key is unique.
#include "runq/jobs/job.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace runq::jobs {

// The request hash of a parsed submit: sha256 (hex) of the request at its effective
// values (every request field of `job`, unknown fields and the idempotency fields left
// out), dumped with sorted keys. `requested_timeout_s` is the timeout as asked (0 = the
// server default), so the hash does not change with --default-timeout. Stored with the
// job: never change the text this hashes, or stored keys stop matching their replays.
std::string request_fingerprint(const Job& job, long long requested_timeout_s);

// The stored form of an idempotency key, prefixed so scopes never collide:
// "global" -> "g:<key>", "session" -> "s:<len(session)>:<session>:<key>" (null session
// counts as ""), "none" -> nullopt (not idempotent).
std::optional<std::string> scoped_idempotency_key(std::string_view scope,
                                                  const std::optional<std::string>& session_id,
                                                  std::string_view key);

}  // namespace runq::jobs
