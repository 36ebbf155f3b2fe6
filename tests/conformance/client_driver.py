"""Drive ``wsframe connect --echo`` through the Autobahn fuzzing server's cases.

    python tests/conformance/client_driver.py URL AGENT

Asks the case count, runs one ``wsframe connect --echo`` process per case
(that command is the testee), then asks for the reports. Used by
``.ci/conformance`` through ``../shared/conformance/client_suite.sh``.
"""
import subprocess
import sys

from wsframe.client.blocking import connect


def main(url: str, agent: str) -> int:
    with connect(f"{url}/getCaseCount", compression=None) as ws:
        count = int(ws.recv(timeout=30))
    testee = [sys.executable, "-m", "wsframe", "--log-level", "WARNING", "connect", "--echo"]
    for case in range(1, count + 1):
        subprocess.run(testee + [f"{url}/runCase?case={case}&agent={agent}"], timeout=600)
    with connect(f"{url}/updateReports?agent={agent}", compression=None) as ws:
        for _ in ws:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
