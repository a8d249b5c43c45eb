// The SQLite store's job queries: submit (with idempotency keys), reads, claims,
// endings, retries, listing, counting, crash recovery and retention.
#include "rows.hpp"
#include "store_impl.hpp"

#include "runq/util/json_text.hpp"
#include "runq/util/time.hpp"

#include <algorithm>
#include <stdexcept>

namespace runq::store::sqlite {

namespace {

std::optional<Job> get_on(Db& db, const std::string& id, bool whole) {
  Use u(whole ? db.cached(s_get_whole, kGetWhole) : db.cached(s_get_status, kGetStatus));
  u.bind(1, id);
  if (!u.step()) return std::nullopt;
  return read_job(u, whole);
}

// For an idempotency key already recorded: the earlier job as replayed or conflict.
// nullopt if the key is free (a key whose job is gone is freed here).
std::optional<InsertResult> find_by_key(Db& db, const std::string& owner,
                                        const std::string& key,
                                        const std::string& request_hash) {
  std::string job_id;
  bool same_request = false;
  {
    Use u(db.cached(s_find_key,
                    "SELECT job_id, request_hash FROM idempotency_keys "
                    "WHERE owner = ?1 AND key = ?2"));
    u.bind(1, owner).bind(2, key);
    if (!u.step()) return std::nullopt;
    job_id = u.text(0);
    same_request = u.text_view(1) == request_hash;
  }
  if (auto earlier = get_on(db, job_id, true)) {
    return InsertResult{same_request ? InsertResult::Outcome::replayed
                                     : InsertResult::Outcome::conflict,
                        std::move(*earlier)};
  }
  Use(db.cached(s_delete_key, "DELETE FROM idempotency_keys WHERE owner = ?1 AND key = ?2"))
      .bind(1, owner)
      .bind(2, key)
      .run();
  return std::nullopt;
}

// Frees an idempotency key, but only if it still points at this job.
void delete_key_of_job(Db& db, const std::string& owner, const std::string& key,
                       const std::string& job_id) {
  Use(db.cached(s_delete_key_of_job,
                "DELETE FROM idempotency_keys WHERE owner = ?1 AND key = ?2 AND job_id = ?3"))
      .bind(1, owner)
      .bind(2, key)
      .bind(3, job_id)
      .run();
}

}  // namespace

std::vector<InsertResult> SqliteStore::insert(const std::vector<Job>& batch,
                                              std::int64_t max_new) {
  for (const Job& j : batch) {
    if (j.id.empty()) throw std::invalid_argument("Store::insert: a job without an id");
  }
  std::vector<InsertResult> out;
  if (batch.empty()) return out;
  out.reserve(batch.size());
  const std::int64_t now = util::now_us();
  return write([&](Db& db) {
    std::int64_t inserted = 0;
    for (const Job& j : batch) {
      if (j.idempotency_key) {
        if (auto earlier = find_by_key(db, j.owner, *j.idempotency_key, j.request_hash)) {
          out.push_back(std::move(*earlier));
          continue;
        }
      }
      if (inserted >= max_new) {
        out.push_back(InsertResult{InsertResult::Outcome::refused, j});
        continue;
      }
      ++inserted;
      InsertResult r{InsertResult::Outcome::inserted, j};
      Job& job = r.job;
      if (job.created_at_us == 0) job.created_at_us = now;
      insert_row(db, job);
      job.seq = db.last_insert_rowid();
      if (job.idempotency_key) {
        Use(db.cached(s_insert_key,
                      "INSERT INTO idempotency_keys (owner, key, job_id, request_hash) "
                      "VALUES (?1, ?2, ?3, ?4)"))
            .bind(1, job.owner)
            .bind(2, *job.idempotency_key)
            .bind(3, job.id)
            .bind(4, job.request_hash)
            .run();
      }
      out.push_back(std::move(r));
    }
    return std::move(out);
  });
}

std::optional<Job> SqliteStore::get(const std::string& id) {
  return read([&](Db& db) { return get_on(db, id, true); });
}

std::optional<Job> SqliteStore::get_status(const std::string& id) {
  return read([&](Db& db) { return get_on(db, id, false); });
}

// Not fsynced by itself (Sync::later): a claim becomes durable with the next write that
// is, since the WAL is one file written in order. Power lost before that forgets the
// start — the job is queued again, as if it had not started — never a stored job.
std::optional<Job> SqliteStore::claim_next(std::int64_t now_us) {
  return write(Sync::later, [&](Db& db) -> std::optional<Job> {
    Use u(db.cached(s_claim, kClaim));
    u.bind(1, now_us);
    if (!u.step()) return std::nullopt;
    std::optional<Job> job = read_job(u, true);
    u.run();  // finish the statement: the UPDATE commits when it is done
    return job;
  });
}

// One statement, one write for every idle worker (Sync::later, as claim_next).
std::vector<Job> SqliteStore::claim_many(std::int64_t now_us, int max) {
  if (max <= 0) return {};
  if (max == 1) {  // the plain claim's plan: the first entry of jobs_claim
    auto job = claim_next(now_us);
    return job ? std::vector<Job>{std::move(*job)} : std::vector<Job>{};
  }
  return write(Sync::later, [&](Db& db) {
    std::vector<Job> out;
    Use u(db.cached(s_claim_many, kClaimMany));
    u.bind(1, now_us).bind(2, std::int64_t{max});
    while (u.step()) out.push_back(read_job(u, true));
    std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) {
      return a.priority != b.priority ? a.priority > b.priority : a.seq < b.seq;
    });
    return out;
  });
}

bool SqliteStore::finish(const Job& job) {
  if (!jobs::is_terminal(job.status)) {
    throw std::invalid_argument("Store::finish: status " +
                                std::string(jobs::to_string(job.status)) +
                                " is not terminal");
  }
  const std::string_view status = jobs::to_string(job.status);
  const std::int64_t completed = job.completed_at_us.value_or(util::now_us());
  return write([&](Db& db) {
    Use(db.cached(s_finish, kFinish))
        .bind(1, job.id)
        .bind(2, status)
        .bind(3, job.result)
        .bind(4, job.error)
        .bind(5, job.progress.percentage)
        .bind(6, job.progress.current_step)
        .bind(7, job.progress.steps_completed)
        .bind(8, job.progress.steps_total)
        .bind(9, completed)
        .bind(10, job.events_json)
        .bind(11, job.run_id)
        .bind(12, job.agent_id)
        .bind(13, job.metrics.is_null() ? std::optional<std::string>()
                                        : std::optional<std::string>(util::json_text(job.metrics)))
        .run();
    return db.changes() == 1;
  });
}

bool SqliteStore::cancel_queued(const std::string& id, std::int64_t now_us,
                                const std::optional<std::string>& reason,
                                const std::string& events_json) {
  return write([&](Db& db) {
    Use(db.cached(s_cancel, kCancel))
        .bind(1, id)
        .bind(2, now_us)
        .bind(3, reason)
        .bind(4, events_json)
        .run();
    return db.changes() == 1;
  });
}

RemoveOutcome SqliteStore::remove(const std::string& id) {
  return write([&](Db& db) {
    std::optional<std::string> key;
    std::string owner;
    {
      Use u(db.cached(s_remove_lookup,
                      "SELECT status, idempotency_key, owner FROM jobs WHERE id = ?1"));
      u.bind(1, id);
      if (!u.step()) return RemoveOutcome::not_found;
      auto status = jobs::parse_status(u.text_view(0));
      if (!status || !jobs::is_terminal(*status)) return RemoveOutcome::not_terminal;
      key = u.opt_text(1);
      owner = u.text(2);
    }
    Use(db.cached(s_delete_job, "DELETE FROM jobs WHERE id = ?1")).bind(1, id).run();
    if (key) delete_key_of_job(db, owner, *key, id);
    return RemoveOutcome::removed;
  });
}

ListPage SqliteStore::list(const ListQuery& q) {
  const unsigned mask = (q.status ? f_status : 0u) | (q.session_id ? f_session : 0u) |
                        (q.owner ? f_owner : 0u);
  const std::string_view status = q.status ? jobs::to_string(*q.status) : "";
  const std::int64_t page_size = std::max(q.page_size, 1);
  const std::int64_t offset = (std::max(q.page, 1) - std::int64_t{1}) * page_size;
  auto bind_filters = [&](Use& u) {
    if (mask & f_status) u.bind(1, status);
    if (mask & f_session) u.bind(2, *q.session_id);
    if (mask & f_owner) u.bind(3, *q.owner);
  };
  return read([&](Db& db) {
    ListPage page;
    Transaction txn(db, /*immediate=*/false);  // the page and its total from one snapshot
    {
      Use u(db.cached(s_count_base + mask, list_sql(mask, true)));
      bind_filters(u);
      if (u.step()) page.total = u.i64(0);
    }
    if (offset < page.total) {
      Use u(db.cached(s_list_base + mask, list_sql(mask, false)));
      bind_filters(u);
      u.bind(4, page_size).bind(5, offset);
      page.jobs.reserve(static_cast<std::size_t>(std::min(page_size, page.total - offset)));
      while (u.step()) {
        page.jobs.push_back(read_job(u, false));
        page.jobs.back().prompt = u.text(c_prompt);  // its head (list_sql)
      }
    }
    txn.commit();
    return page;
  });
}

StatusCounts SqliteStore::count_by_status(const std::optional<std::string>& owner) {
  return read([&](Db& db) {
    StatusCounts counts{};
    Use u(owner ? db.cached(s_count_owner,
                            "SELECT status, COUNT(*) FROM jobs WHERE owner = ?1 "
                            "GROUP BY status")
                : db.cached(s_count_all, "SELECT status, COUNT(*) FROM jobs GROUP BY status"));
    if (owner) u.bind(1, *owner);
    while (u.step()) {
      if (auto s = jobs::parse_status(u.text_view(0))) {
        counts[static_cast<std::size_t>(*s)] = u.i64(1);
      }
    }
    return counts;
  });
}

RequeueCounts SqliteStore::requeue_running(int max_attempts) {
  return write([&](Db& db) {
    RequeueCounts counts;
    if (max_attempts > 0) {
      Use(db.cached(s_requeue_fail, kRequeueFail))
          .bind(1, util::now_us())
          .bind(2, max_attempts)
          .run();
      counts.failed = static_cast<int>(db.changes());
    }
    Use(db.cached(s_requeue,
                  "UPDATE jobs SET status = 'queued', started_at = NULL "
                  "WHERE status = 'running'"))
        .run();
    counts.requeued = static_cast<int>(db.changes());
    return counts;
  });
}

int SqliteStore::delete_finished_before(std::int64_t completed_before_us, int limit) {
  if (limit <= 0) return 0;
  return write([&](Db& db) {
    struct Key {
      std::string owner, key, job_id;
    };
    std::vector<Key> keys;
    int deleted = 0;
    {
      Use u(db.cached(s_delete_finished, kDeleteFinished));
      u.bind(1, completed_before_us).bind(2, std::int64_t{limit});
      while (u.step()) {
        ++deleted;
        if (!u.is_null(1)) keys.push_back(Key{u.text(2), u.text(1), u.text(0)});
      }
    }
    for (const auto& k : keys) delete_key_of_job(db, k.owner, k.key, k.job_id);
    return deleted;
  });
}

bool SqliteStore::requeue_for_retry(const Job& running, std::int64_t not_before_us) {
  return write([&](Db& db) {
    Use(db.cached(s_retry, kRetry))
        .bind(1, running.id)
        .bind(2, not_before_us)
        .bind(3, running.attempts)
        .run();
    return db.changes() == 1;
  });
}

}  // namespace runq::store::sqlite
