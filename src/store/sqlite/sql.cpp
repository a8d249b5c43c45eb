#include "sql.hpp"

#include "runq/jobs/store.hpp"

#include <array>

namespace runq::store::sqlite {

namespace {
std::string where_clause(unsigned mask) {
  std::string w;
  auto add = [&](const char* term) {
    w += w.empty() ? " WHERE " : " AND ";
    w += term;
  };
  if (mask & f_status) add("status = ?1");
  if (mask & f_session) add("session_id = ?2");
  if (mask & f_owner) add("owner = ?3");
  return w;
}

}  // namespace

// SQL of the list (count = false) or total (count = true) query for a filter mask.
const std::string& list_sql(unsigned mask, bool count) {
  static const auto sqls = [] {
    std::array<std::string, 16> a;
    for (unsigned m = 0; m < 8; ++m) {
      // The prompt's head comes where a whole row has the prompt (c_prompt).
      a[m] = "SELECT " RUNQ_ROW_STATUS ", substr(prompt, 1, " +
             std::to_string(jobs::kListPromptChars) + ") FROM jobs" + where_clause(m) +
             " ORDER BY created_at DESC, seq DESC LIMIT ?4 OFFSET ?5";
      a[8 + m] = "SELECT COUNT(*) FROM jobs" + where_clause(m);
    }
    return a;
  }();
  return sqls[(count ? 8 : 0) + mask];
}

}  // namespace runq::store::sqlite
