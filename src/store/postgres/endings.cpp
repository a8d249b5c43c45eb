// The PostgreSQL store's endings: a job's terminal state, stored by the node running it.
//
// Workers that end jobs at the same time share one transaction (group commit, as the
// SQLite store's writes do): the first becomes the leader and sends the s_finish of
// every ending that queued meanwhile in one pipeline, one round trip and one commit for
// all. Alone, an ending is one s_finish.
#include "store_impl.hpp"

#include "runq/util/json_text.hpp"
#include "runq/util/time.hpp"

#include <stdexcept>

namespace runq::store::postgres {

bool PostgresStore::finish(const Job& job) {
  if (!jobs::is_terminal(job.status)) {
    throw std::invalid_argument("Store::finish: status " +
                                std::string(jobs::to_string(job.status)) +
                                " is not terminal");
  }
  EndingOp op;
  op.job = &job;
  op.completed_at_us = job.completed_at_us.value_or(util::now_us());
  endings_.run(op, [this](std::vector<EndingOp*>& batch) { store_endings(batch); });
  if (op.error) std::rethrow_exception(op.error);
  return op.ended;
}

void PostgresStore::store_endings(std::vector<EndingOp*>& batch) {
  if (batch.size() > 1) {
    try {
      store_together(batch);
      return;
    } catch (const StoreUnavailable&) {
      // Each ending gets the fault, as it would alone (and, as alone, a fault while
      // committing leaves it unknown whether the ends were stored).
      for (EndingOp* op : batch) op->error = std::current_exception();
      return;
    } catch (...) {
      // The database refused one of them (or chose the transaction as a deadlock's
      // victim) and kept none: each again alone, so only its own caller gets its error.
    }
  }
  for (EndingOp* op : batch) {
    try {
      op->ended = store_alone(*op);
    } catch (...) {
      op->error = std::current_exception();
    }
  }
}

namespace {

Params finish_params(const Job& job, std::int64_t completed_at_us, const std::string& lease) {
  Params p;
  p.add(job.id)
      .add(jobs::to_string(job.status))
      .add(job.result)
      .add(job.error)
      .add(job.progress.percentage)
      .add(job.progress.current_step)
      .add(job.progress.steps_completed)
      .add(job.progress.steps_total)
      .add(completed_at_us)
      .add(job.events_json)
      .add(job.run_id)
      .add(job.agent_id);
  if (job.metrics.is_null()) p.null();
  else p.add(util::json_text(job.metrics));
  p.add(job.attempts).add(lease);  // fencing: this node's attempt only
  return p;
}

}  // namespace

bool PostgresStore::store_alone(const EndingOp& op) {
  const Params p = finish_params(*op.job, op.completed_at_us, keeper_->lease_id());
  return write([&](Connection& c) { return c.run(s_finish, p).i64(0, 0) == 1; });
}

void PostgresStore::store_together(std::vector<EndingOp*>& batch) {
  const std::string lease = keeper_->lease_id();
  std::vector<Params> each;
  each.reserve(batch.size());
  for (const EndingOp* op : batch) each.push_back(finish_params(*op->job, op->completed_at_us, lease));
  std::vector<Result> results =
      write([&](Connection& c) { return c.run_together(s_finish, each); });
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->ended = results[i].i64(0, 0) == 1;
}

}  // namespace runq::store::postgres
