"""Status polls of 100-guide lotes over HTTP against the same gunicorn answering constant bytes,
side by side (issue 15's status target: at least 0.5 of the constant answer's rate).

    flock /tmp/bench.lock .venv/bin/python bench/status.py [--lotes 20] [--polls 1200] [--rounds 3]
                                                         [--database postgresql://...]

1. Starts ``tiss-gateway serve --demo`` (gunicorn, ``--workers`` workers of the gateway's worker
   class and threads) and sends ``--lotes`` lotes of 100 SP/SADT guides, then one poll of each
   protocol (its guide list rendered and kept).
2. Starts the ceiling beside it: the same gunicorn (workers, worker class, threads) serving
   ``bench/constant_app.py`` with a copy of the gateway's own status answer (as many bytes back).
3. ``--rounds`` times, alternating: ``--polls`` fresh polls (new sequencialTransacao, protocols in
   turn, state unchanged: what an ERP polling its open lotes mostly sends) to the gateway, then the
   same bodies to the ceiling, from ``--threads`` client threads. Each round's ratio is measured
   under the same load; the median of the rounds is the result. A last round replays polls already
   answered (the stored answer again) for information.

Both servers run on 127.0.0.1 for the whole run; only one is polled at a time. On a shared machine
the rates swing with the neighbours' load: each round also prints the CPU time the server's
processes spent per poll (from /proc), which the load moves much less.
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.front import LOTE, PROTOCOLO, STATUS, WORKER, accepted, any_200, line, post, run, status_ok  # noqa: E402
from tests.factory import build_lote, build_request  # noqa: E402
from tests.gateway_process import GatewayProcess  # noqa: E402


def cpu_seconds(session: int) -> float:
    """User + system CPU of the live processes of a session (a server started in its own)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6, the session id (fields here start at field 3)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measured(label: str, server, bodies: list[bytes], args: argparse.Namespace, ok) -> tuple[object, float]:
    """The run and its server CPU per poll (ms)."""
    session = server.process.pid
    before = cpu_seconds(session)
    result = run(label, server.port, STATUS, bodies, args.threads, args.max_seconds, ok)
    return result, (cpu_seconds(session) - before) * 1000 / max(len(result.latencies), 1)


def polls(protocolos: list[str], count: int, prefix: str) -> list[bytes]:
    return [build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial=f"{prefix}{i}",
                          numero_protocolo=protocolos[i % len(protocolos)]) for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lotes", type=int, default=20)
    parser.add_argument("--polls", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--guides", type=int, default=100)
    parser.add_argument("--max-seconds", type=float, default=120, help="time bound of each phase")
    parser.add_argument("--database", metavar="URL", help="an EMPTY database (default: SQLite)")
    args = parser.parse_args()
    if not (1 <= args.lotes <= 500 and 1 <= args.polls <= 20000 and 1 <= args.rounds <= 20
            and 1 <= args.threads <= 64):
        parser.error("--lotes 1..500, --polls 1..20000, --rounds 1..20, --threads 1..64")

    lotes = [build_lote("sp-sadt", args.guides, envelope=True, numero_lote=str(1000 + i),
                        sequencial=str(1000 + i)) for i in range(args.lotes)]
    with tempfile.TemporaryDirectory(prefix="tiss-bench-status-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        answers = Path(tmp) / "answers"
        answers.mkdir()
        url = args.database or f"sqlite:///{home / 'gateway.sqlite'}"
        with GatewayProcess(url, home, workers=args.workers, log_dir=Path(tmp)) as gateway:
            sent = run("lotes", gateway.port, LOTE, lotes, args.threads, args.max_seconds, accepted)
            protocolos = [m.group(1).decode() for a in sent.answers if (m := PROTOCOLO.search(a))]
            if len(protocolos) != len(lotes):
                raise SystemExit(f"only {len(protocolos)} of {len(lotes)} lotes accepted")
            firsts = polls(protocolos, len(protocolos), "p")
            code, first = post(gateway.port, STATUS, firsts[0])
            assert status_ok(code, first), first[:2000]
            (answers / "tissSolicitacaoStatusProtocolo.xml").write_bytes(first)
            print(line(run("gateway: status, 1st poll", gateway.port, STATUS, firsts[1:], args.threads,
                           args.max_seconds, status_ok)))
            with GatewayProcess(url, home, workers=args.workers, log_dir=Path(tmp),
                                app_args=(*WORKER, "bench.constant_app:app"),
                                env={"TISS_BENCH_ANSWERS": str(answers)}) as ceiling:
                post(ceiling.port, STATUS, firsts[0])
                ratios, failures, cpu = [], 0, []
                for r in range(args.rounds):
                    bodies = polls(protocolos, args.polls, f"r{r}-")
                    ours, our_cpu = measured(f"gateway: status, round {r + 1}", gateway, bodies, args,
                                             status_ok)
                    theirs, their_cpu = measured(f"ceiling: status, round {r + 1}", ceiling, bodies, args,
                                                 any_200)
                    ratios.append(ours.rate / theirs.rate)
                    cpu.append((our_cpu, their_cpu))
                    failures += ours.failures + theirs.failures
                    print(f"{line(ours, theirs)}  server CPU {our_cpu:.2f} ms/poll")
                    print(f"{line(theirs)}  server CPU {their_cpu:.2f} ms/poll")
                replayed = run("gateway: status, replayed", gateway.port, STATUS, bodies, args.threads,
                               args.max_seconds, status_ok)
                failures += replayed.failures
                print(line(replayed))

    backend = "SQLite" if url.startswith("sqlite") else url.split(":", 1)[0]
    median = statistics.median(ratios)
    print(f"\n{backend}, gunicorn {args.workers} workers {' '.join(WORKER)}, {args.threads} client threads, "
          f"{args.guides}-guide lotes, answer {len(first)} bytes")
    print(f"status polls / constant answer, per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
          f"median {median:.2f} -> target 0.50 {'met' if median >= 0.5 else 'NOT met'}")
    ours_cpu, theirs_cpu = (statistics.median(c[i] for c in cpu) for i in (0, 1))
    print(f"server CPU per poll, median: gateway {ours_cpu:.2f} ms, ceiling {theirs_cpu:.2f} ms")
    if failures:
        print(f"FAILURES: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
