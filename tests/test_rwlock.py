import threading
import time

from ruvector._rwlock import ModeGate


def test_mode_gate_runs_one_mode_at_a_time_and_switches_once_per_phase():
    gate, lock = ModeGate(), threading.Lock()
    running, log, switches = {}, [], []

    def worker(mode):
        for _ in range(30):
            with gate.hold(mode, lambda: switches.append(mode)):
                with lock:
                    running[mode] = running.get(mode, 0) + 1
                    log.append(sorted(m for m, n in running.items() if n))
                time.sleep(0.0005)
                with lock:
                    running[mode] -= 1

    threads = [threading.Thread(target=worker, args=(m,)) for m in (1, 1, 2, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(active) == 1 for active in log)  # never two modes at once
    assert {1, 2, 3} <= set(switches) and len(switches) <= len(log)
