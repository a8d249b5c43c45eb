#pragma once

namespace runq::cli {

// The client commands: runq submit|status|result|cancel|delete|list|stream|wait.
// argv[1] is the command. Returns the exit status: 0 success, 1 the server said no
// (or the job ended failed/cancelled under wait), 2 bad usage, 3 server unreachable.
int run(int argc, char** argv);

}  // namespace runq::cli
