"""``python -m syncws run`` as a benchmark server: ``syncws_run_server.py --workers N``.

Runs the runner on ``syncws_server.py``'s echo handler with that server's settings
(compression off, max_size 16 MiB, max_connections 10,000, backlog 1024) on a free port,
and prints ``PORT <n>`` once every worker listens. The runner is this process's child and
its workers are the runner's: the load generator counts their CPU time with this one's.
"""

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 2
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = subprocess.Popen(
        [sys.executable, "-m", "syncws", "run", "syncws_server:echo",
         "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
         "--compression", "none", "--max-size", str(16 << 20),
         "--max-connections", "10000", "--backlog", "1024"],
        cwd=HERE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert runner.stderr is not None
    listening = 0
    for line in runner.stderr:
        listening += "server listening on" in line
        if listening == workers:
            break
    # Keep reading: a full pipe would block the workers' logging.
    threading.Thread(target=runner.stderr.read, daemon=True).start()

    def stop(signum: int, frame: object) -> None:
        runner.terminate()
        runner.wait(15)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("PORT", port, flush=True)
    runner.wait()


if __name__ == "__main__":
    main()
