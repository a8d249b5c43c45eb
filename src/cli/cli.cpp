// The `runq` command line: CLI11 wiring for the client commands, and their dispatch.
#include "runq/cli/cli.hpp"

#include "commands.hpp"
#include "common.hpp"
#include "runq/http/client.hpp"

#include <CLI/CLI.hpp>

#include <deque>
#include <initializer_list>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runq::cli {
namespace {

// Each command has its own Common: CLI11 fills an option's environment default even for
// commands that were not given, so sharing one variable would let RUNQ_API_URL win
// over --api-url.
Common& add_common(CLI::App* sub, std::deque<Common>& storage) {
  Common& c = storage.emplace_back();
  sub->add_flag("--json", c.json, "Print the server's JSON document on stdout");
  sub->add_option("--api-url", c.api_url, "Base URL of the runq server")
      ->envname("RUNQ_API_URL")
      ->default_str(kDefaultApiUrl);
  sub->add_option("--api-key", c.api_key, "API key sent as a Bearer token")
      ->envname("RUNQ_API_KEY");
  return c;
}

// Which of `sub`'s flags were given on the command line.
Given given_in(const CLI::App& sub) {
  return [&sub](std::string_view flag) { return sub.count(std::string(flag)) > 0; };
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"runq: an async-job HTTP server and its client", "runq"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "runq 0.1.0");
  app.footer(
      "Run `runq serve --help` for the server's flags, `runq <command> --help` for a "
      "command's.\nExit status: 0 success, 1 the server said no (or the job failed or was "
      "cancelled under wait), 2 bad usage, 3 server unreachable.");

  std::deque<Common> commons;
  std::vector<std::pair<CLI::App*, Common*>> command_common;
  auto add_common_to = [&](CLI::App* sub) { command_common.emplace_back(sub, &add_common(sub, commons)); };
  std::string id;
  int rc = kExitOk;

  auto* serve = app.add_subcommand("serve", "Run the runq HTTP server (see runq serve --help)");
  serve->allow_extras();
  serve->prefix_command();

  SubmitArgs submit_args;
  auto* submit = app.add_subcommand("submit", "Submit a job; prints its id");
  submit->add_option("prompt", submit_args.prompt, "The input the agent works on")->required();
  submit->add_option("--agent-file", submit_args.agent_file, "Agent file, passed to the agent");
  submit->add_option("--agent-yaml", submit_args.agent_yaml, "Agent YAML, passed to the agent");
  submit->add_option("--recipe", submit_args.recipe, "Recipe name (recipe_name)");
  submit->add_option("--recipe-config", submit_args.recipe_config, "Recipe config (JSON object)");
  submit->add_option("--config", submit_args.config,
                     "Agent config (JSON object), e.g. '{\"sleep_seconds\": 2, \"steps\": 4}'");
  submit->add_option("--framework", submit_args.framework, "Framework (default praisonai)");
  submit->add_option("--timeout", submit_args.timeout, "Seconds of running time allowed");
  submit->add_option("--session-id", submit_args.session_id, "Session id (a list filter)");
  submit->add_option("--idempotency-key", submit_args.idempotency_key,
                     "Submitting again with this key returns the first job");
  submit->add_option("--idempotency-scope", submit_args.idempotency_scope,
                     "none, session or global")
      ->check(CLI::IsMember({"none", "session", "global"}));
  submit->add_option("--webhook-url", submit_args.webhook_url, "URL POSTed when the job ends");
  submit->add_option("--priority", submit_args.priority, "-100..100, higher runs first");
  submit->add_option("--max-retries", submit_args.max_retries, "Re-run a failed job (0..10)");
  submit->add_option("--metadata", submit_args.metadata, "KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  submit->add_flag("--wait", submit_args.wait,
                   "Wait until the job ends, then print its result (like `runq wait`)");
  add_common_to(submit);

  auto add_id_command = [&](const char* name, const char* help) {
    auto* sub = app.add_subcommand(name, help);
    sub->add_option("id", id, "The job id (run_...)")->required();
    add_common_to(sub);
    return sub;
  };
  auto* status = add_id_command("status", "Show a job's status");
  auto* result = add_id_command("result", "Print a succeeded job's result");
  auto* cancel = add_id_command("cancel", "Cancel a queued or running job");
  auto* del = add_id_command("delete", "Delete a finished job");
  auto* stream = add_id_command("stream", "Follow a job's events until it ends");
  double wait_timeout = 0;
  auto* wait = add_id_command("wait", "Wait until a job ends; print its result");
  wait->add_option("--timeout", wait_timeout, "Give up after this many seconds (default: never)")
      ->check(CLI::NonNegativeNumber);

  ListArgs list_args;
  auto* list = app.add_subcommand("list", "List jobs, newest first");
  list->add_option("--status", list_args.status,
                   "queued, running, succeeded, failed or cancelled");
  list->add_option("--session-id", list_args.session_id, "Only this session's jobs");
  list->add_option("--page", list_args.page, "Page number (from 1)");
  list->add_option("--page-size", list_args.page_size, "Jobs per page (1..100)");
  add_common_to(list);

  if (argc < 2) {
    std::cerr << app.help();
    return kExitUsage;
  }
  if (const std::string_view command = argv[1]; !command.empty() && command.front() != '-') {
    bool known = false;
    for (const auto& [name, sub] : std::initializer_list<std::pair<std::string_view, CLI::App*>>{
             {"serve", serve}, {"submit", submit}, {"status", status}, {"result", result},
             {"cancel", cancel}, {"delete", del}, {"stream", stream}, {"wait", wait},
             {"list", list}})
      known = known || (name == command && sub);
    if (!known) {
      std::cerr << "runq: unknown command '" << command << "'\nRun `runq --help` for the commands.\n";
      return kExitUsage;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  Common common;
  for (const auto& [sub, c] : command_common)
    if (sub->parsed()) common = *c;

  try {
    if (*serve) {
      std::cerr << "runq: `serve` is handled by the server entry point\n";
      rc = kExitUsage;
    } else if (*submit) {
      rc = cmd_submit(common, submit_args, given_in(*submit));
    } else if (*status) {
      rc = cmd_status(common, id);
    } else if (*result) {
      rc = cmd_result(common, id);
    } else if (*cancel) {
      rc = cmd_cancel(common, id);
    } else if (*del) {
      rc = cmd_delete(common, id);
    } else if (*list) {
      rc = cmd_list(common, list_args, given_in(*list));
    } else if (*stream) {
      rc = cmd_stream(common, id);
    } else if (*wait) {
      rc = cmd_wait(common, id, wait_timeout);
    }
  } catch (const std::invalid_argument& e) {  // UsageError among them
    std::cerr << "runq: " << e.what() << '\n';
    return kExitUsage;
  } catch (const http::ConnectionError& e) {
    std::cerr << "runq: cannot reach the runq server at " << common.api_url << ": " << e.what()
              << '\n';
    return kExitUnreachable;
  } catch (const std::exception& e) {
    std::cerr << "runq: " << e.what() << '\n';
    return kExitRefused;
  }
  return rc;
}

}  // namespace runq::cli
