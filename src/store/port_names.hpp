#pragma once
// The port of jobs/ that the stores implement (runq/jobs/store.hpp), by the short names
// their code uses (store::sqlite and store::postgres see them).
#include "runq/jobs/store.hpp"

namespace runq::store {

using jobs::FaultReason;
using jobs::InsertResult;
using jobs::Job;
using jobs::JobStatus;
using jobs::ListPage;
using jobs::ListQuery;
using jobs::RemoveOutcome;
using jobs::RequeueCounts;
using jobs::StatusCounts;
using jobs::Store;
using jobs::StoreFault;
using jobs::StoreUnavailable;
using jobs::WebhookDelivery;

}  // namespace runq::store
