"""A writer process for test_s3_takeover: THREADS threads add unique ids to a collection on
s3:// as fast as they can; ``BEGIN id`` before each add, ``ACK id`` once it returned.

Usage: s3_writer.py URL ENDPOINT LEASE_TTL
"""

import sys
import threading

import numpy as np

import gleandb

THREADS = 8


def main() -> None:
    url, endpoint, ttl = sys.argv[1], sys.argv[2], float(sys.argv[3])
    client = gleandb.PersistentClient(url, storage_options={
        "endpoint": endpoint, "access_key_id": "testing", "secret_access_key": "testing",
        "region": "us-east-1", "lease_ttl": ttl, "lease_wait": 30.0})
    col = client.get_or_create_collection("takeover", embedding_function=None)
    out = threading.Lock()
    print("READY", flush=True)

    def say(line: str) -> None:
        with out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def work(t: int) -> None:
        rng = np.random.default_rng(t)
        for i in range(1_000_000):
            id_ = f"w{t}-{i}"
            say(f"BEGIN {id_}")
            col.add(ids=[id_], embeddings=rng.normal(size=(1, 4)).astype("float32"))
            say(f"ACK {id_}")

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
