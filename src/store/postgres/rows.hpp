#pragma once
// Private to the PostgreSQL store: a jobs row <-> a Job.
#include "connection.hpp"
#include "../port_names.hpp"

namespace runq::store::postgres {

// Reads row `row` of `r`, laid out as RUNQ_PG_ROW_STATUS (whole = false) or
// RUNQ_PG_ROW_WHOLE (sql.hpp).
Job read_job(const Result& r, int row, bool whole);

// The parameters of s_insert_job for `j`.
Params insert_params(const Job& j);

}  // namespace runq::store::postgres
