#include "conninfo.hpp"

#include <libpq-fe.h>

#include <memory>
#include <stdexcept>
#include <string_view>

namespace runq::store::postgres {

namespace {

struct ConninfoOptionsFree {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};

// "host:port/dbname" from the parsed URI; libpq's defaults where it names none.
std::string describe_target(const PQconninfoOption* opts) {
  std::string host, port, dbname, user;
  for (const PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val) continue;
    const std::string_view k = o->keyword;
    if (k == "host" || (k == "hostaddr" && host.empty())) host = o->val;
    else if (k == "port") port = o->val;
    else if (k == "dbname") dbname = o->val;
    else if (k == "user") user = o->val;
  }
  std::string where = host.empty() ? "localhost" : host;
  where += ':';
  where += port.empty() ? "5432" : port;
  if (!dbname.empty()) where += "/" + dbname;
  else if (!user.empty()) where += "/" + user;  // libpq's default database
  return where;
}

}  // namespace

ConnSettings conn_settings(const std::string& uri, const std::string& node_name) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoOptionsFree> parsed(
      PQconninfoParse(uri.c_str(), &err));
  if (!parsed) {
    std::string msg = err ? err : "out of memory";
    PQfreemem(err);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    throw std::runtime_error("invalid PostgreSQL URI: " + msg);
  }
  ConnSettings s;
  s.where = describe_target(parsed.get());
  auto add = [&](const char* k, std::string v) {
    s.keywords.emplace_back(k);
    s.values.push_back(std::move(v));
  };
  // Never wait forever: not for a connection, nor on one whose peer vanished
  // (keepalives for an idle socket, tcp_user_timeout for unacknowledged data).
  add("connect_timeout", std::to_string(kConnectTimeoutS));
  add("keepalives", "1");
  add("keepalives_idle", "10");
  add("keepalives_interval", "5");
  add("keepalives_count", "3");
  add("tcp_user_timeout", "30000");
  add("client_encoding", "UTF8");
  add("dbname", uri);
  add("application_name", "runq/" + node_name);
  return s;
}

}  // namespace runq::store::postgres
