"""A real S3 API server for tests: moto's server mode in its own process, on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

# Any credentials do for a moto server that does not check them; they reach botocore (in
# the test process, pyama subprocesses and dask workers) through the environment.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "pyama-test-key", "AWS_SECRET_ACCESS_KEY": "pyama-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=self.endpoint, key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                 secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], skip_instance_cache=True,
                                 use_listings_cache=False)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_s3_server(check_credentials: bool = False) -> S3Server:
    """Start ``python -m moto.server`` and wait until it answers.

    ``check_credentials`` turns on moto's IAM checks from the first request
    (``INITIAL_NO_AUTH_ACTION_COUNT=0``): it then refuses every access key, as S3 does an
    unknown one."""
    port = free_port()
    env = {**os.environ, **CREDENTIALS}
    if check_credentials:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except urllib.error.HTTPError:  # it answers (with an error): it is up
            break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("moto server exited at start; is moto[server] installed?")
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("moto server did not answer within 60 s")
    return S3Server(endpoint, process)
