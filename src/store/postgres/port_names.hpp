#pragma once
// The port of jobs/ that this store implements (runq/jobs/store.hpp), by the short names
// the store's code uses.
#include "runq/jobs/store.hpp"

namespace runq::store::postgres {

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

}  // namespace runq::store::postgres
