#pragma once
// Private to the SQLite store: a jobs row <-> a Job.
#include "runq/jobs/store.hpp"
#include "sqlite_db.hpp"

namespace runq::store::sqlite {

// Reads a row laid out as RUNQ_ROW_STATUS (whole = false) or RUNQ_ROW_WHOLE (sql.hpp).
Job read_job(const Use& u, bool whole);

// Inserts `j` as a new row (kInsertJob).
void insert_row(Db& db, const Job& j);

}  // namespace runq::store::sqlite
