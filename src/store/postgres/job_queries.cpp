// The PostgreSQL store's job queries: submit (with idempotency keys), reads, claims,
// cancels, retries, listing, counting, crash recovery and retention.
#include "rows.hpp"
#include "store_impl.hpp"

#include "runq/util/json_text.hpp"
#include "runq/util/time.hpp"
#include "runq/util/utf8.hpp"

#include <algorithm>
#include <stdexcept>

namespace runq::store::postgres {

namespace {

// A deadlock (two nodes' batches taking the same idempotency keys in opposite orders) rolls
// one batch back; it is simply run again, this many times at most.
constexpr int kInsertTries = 3;

std::optional<Job> get_on(Connection& c, const std::string& id, bool whole) {
  Result r = c.run(whole ? s_get_whole : s_get_status, Params().add(id));
  if (r.rows() == 0) return std::nullopt;
  return read_job(r, 0, whole);
}

// For an idempotency key already recorded (committed, or earlier in this transaction):
// the earlier job as replayed or conflict. nullopt if the key is free (a key whose job is
// gone is freed here).
std::optional<InsertResult> find_by_key(Connection& c, const std::string& owner,
                                        const std::string& key,
                                        const std::string& request_hash) {
  Result k = c.run(s_find_key, Params().add(owner).add(key));
  if (k.rows() == 0) return std::nullopt;
  const std::string job_id = k.text(0, 0);
  const bool same_request = k.text_view(0, 1) == request_hash;
  if (auto earlier = get_on(c, job_id, true)) {
    return InsertResult{same_request ? InsertResult::Outcome::replayed
                                     : InsertResult::Outcome::conflict,
                        std::move(*earlier)};
  }
  c.run(s_delete_stale_key, Params().add(owner).add(key).add(job_id));
  return std::nullopt;
}

// Records the key of a new job. False if another transaction (another node) recorded the
// same key first and has committed: the job is then that one's replay or conflict.
bool take_key(Connection& c, const Job& j) {
  return c.run(s_take_key, Params()
                               .add(j.owner)
                               .add(*j.idempotency_key)
                               .add(j.id)
                               .add(j.request_hash))
             .affected() == 1;
}

std::vector<InsertResult> insert_on(Connection& c, const std::vector<Job>& batch,
                                    std::int64_t max_new, std::int64_t now) {
  std::vector<InsertResult> out;
  out.reserve(batch.size());
  Transaction txn(c);
  std::int64_t inserted = 0;
  for (const Job& j : batch) {
    if (j.idempotency_key) {
      if (auto earlier = find_by_key(c, j.owner, *j.idempotency_key, j.request_hash)) {
        out.push_back(std::move(*earlier));
        continue;
      }
    }
    if (inserted >= max_new) {
      out.push_back(InsertResult{InsertResult::Outcome::refused, j});
      continue;
    }
    InsertResult r{InsertResult::Outcome::inserted, j};
    Job& job = r.job;
    if (job.created_at_us == 0) job.created_at_us = now;
    // The key first: taking it waits for any other transaction with the same key, so of
    // two nodes submitting it at once exactly one inserts the job.
    if (job.idempotency_key && !take_key(c, job)) {
      auto earlier = find_by_key(c, job.owner, *job.idempotency_key, job.request_hash);
      if (!earlier)
        throw std::runtime_error("postgresql: idempotency key of job " + job.id +
                                 " was taken and freed again while it was inserted");
      out.push_back(std::move(*earlier));
      continue;
    }
    ++inserted;
    job.seq = c.run(s_insert_job, insert_params(job)).i64(0, 0);
    out.push_back(std::move(r));
  }
  // Idle workers of every node wake up when it commits.
  if (inserted > 0) c.run(s_notify_queued, Params().add(inserted));
  txn.commit();
  return out;
}

}  // namespace

std::vector<InsertResult> PostgresStore::insert(const std::vector<Job>& batch,
                                                std::int64_t max_new) {
  for (const Job& j : batch) {
    if (j.id.empty()) throw std::invalid_argument("Store::insert: a job without an id");
  }
  if (batch.empty()) return {};
  const std::int64_t now = util::now_us();
  return write([&](Connection& c) {
    for (int attempt = 1;; ++attempt) {
      try {
        return insert_on(c, batch, max_new, now);
      } catch (const SqlError& e) {
        if (!e.retryable() || attempt == kInsertTries) throw;
      }
    }
  });
}

std::optional<Job> PostgresStore::get(const std::string& id) {
  return read([&](Connection& c) { return get_on(c, id, true); });
}

std::optional<Job> PostgresStore::get_status(const std::string& id) {
  return read([&](Connection& c) { return get_on(c, id, false); });
}

std::optional<Job> PostgresStore::claim_next(std::int64_t now_us) {
  std::vector<Job> jobs = claim_many(now_us, 1);
  if (jobs.empty()) return std::nullopt;
  return std::move(jobs.front());
}

std::vector<Job> PostgresStore::claim_many(std::int64_t now_us, int n) {
  // Without a lease (lost, not yet taken again) this node starts nothing.
  if (n <= 0 || !keeper_->holds_lease()) return {};
  return write([&](Connection& c) {
    Result r = c.run(s_claim, Params().add(now_us).add(keeper_->lease_id()).add(n).add(node_name_));
    std::vector<Job> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_job(r, i, true));
    // RETURNING has no order: claim order, as the caller would have claimed one by one.
    std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) {
      return a.priority != b.priority ? a.priority > b.priority : a.seq < b.seq;
    });
    return out;
  });
}

bool PostgresStore::cancel_queued(const std::string& id, std::int64_t now_us,
                                  const std::optional<std::string>& reason,
                                  const std::string& events_json) {
  return write([&](Connection& c) {
    return c.run(s_cancel, Params().add(id).add(now_us).add(reason).add(events_json))
               .i64(0, 0) == 1;
  });
}

RemoveOutcome PostgresStore::remove(const std::string& id) {
  return write([&](Connection& c) {
    // One statement deletes a terminal job and frees its key; only if it deleted nothing
    // is there a question why.
    if (c.run(s_remove, Params().add(id)).i64(0, 0) == 1) return RemoveOutcome::removed;
    return c.run(s_exists, Params().add(id)).rows() == 0 ? RemoveOutcome::not_found
                                                         : RemoveOutcome::not_terminal;
  });
}

namespace {

// A listed prompt's head as valid UTF-8. Prompts are valid UTF-8, and in a UTF8 database
// the head is whole characters; in a SQL_ASCII one it is bytes, and may end inside a
// character: that piece goes.
std::string prompt_head(std::string bytes) {
  for (int i = 0; i < 3 && !util::is_valid_utf8(bytes); ++i) bytes.pop_back();
  return util::to_valid_utf8(std::move(bytes));
}

}  // namespace

ListPage PostgresStore::list(const ListQuery& q) {
  const unsigned mask = (q.status ? f_status : 0u) | (q.session_id ? f_session : 0u) |
                        (q.owner ? f_owner : 0u);
  const std::int64_t page_size = std::max(q.page_size, 1);
  const std::int64_t offset = (std::max(q.page, 1) - std::int64_t{1}) * page_size;
  Params p;
  if (q.status) p.add(jobs::to_string(*q.status));
  else p.null();
  p.add(q.session_id).add(q.owner).add(page_size).add(offset);
  return read([&](Connection& c) {
    Result r = c.run(static_cast<Sql>(s_list_base + mask), p);
    ListPage page;
    page.jobs.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
      page.total = r.i64(i, kListTotalCol);
      if (r.is_null(i, c_seq)) continue;
      page.jobs.push_back(read_job(r, i, false));
      page.jobs.back().prompt = prompt_head(r.bytes(i, c_prompt));
    }
    return page;
  });
}

StatusCounts PostgresStore::count_by_status(const std::optional<std::string>& owner) {
  return read([&](Connection& c) {
    Result r = owner ? c.run(s_count_owner, Params().add(*owner)) : c.run(s_count_all, {});
    StatusCounts counts{};
    for (int i = 0; i < r.rows(); ++i) {
      if (auto s = jobs::parse_status(r.text_view(i, 0)))
        counts[static_cast<std::size_t>(*s)] = r.i64(i, 1);
    }
    return counts;
  });
}

// Several nodes share the database: only the jobs of nodes whose lease has run out are
// re-queued (never a live node's), as the lease keepers do all the time.
RequeueCounts PostgresStore::requeue_running(int max_attempts) {
  return write([&](Connection& c) { return rescue_expired(c, keeper_->lease(), max_attempts); });
}

int PostgresStore::delete_finished_before(std::int64_t completed_before_us, int limit) {
  if (limit <= 0) return 0;
  return write([&](Connection& c) {
    return c.run(s_delete_finished, Params().add(completed_before_us).add(limit)).i32(0, 0);
  });
}

bool PostgresStore::requeue_for_retry(const Job& running, std::int64_t not_before_us) {
  return write([&](Connection& c) {
    return c.run(s_retry, Params()
                              .add(running.id)
                              .add(not_before_us)
                              .add(running.attempts)
                              .add(keeper_->lease_id()))
               .affected() == 1;
  });
}

}  // namespace runq::store::postgres
