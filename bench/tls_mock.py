"""`bastion mock` over TLS: the same ASGI app and uvicorn settings, with a certificate.

`bastion mock` has no TLS option, so `bench/run.py --tls` serves the mock's app through this
script instead: `bastion.mock.server.mock_config` (what `bastion mock` runs) plus uvicorn's
`ssl_certfile`/`ssl_keyfile`. The certificate comes from the bench's local CA (servers.make_tls).

    .venv/bin/python bench/tls_mock.py --port 8789 --cert server.pem --key server.key
"""

from __future__ import annotations

import argparse

import uvicorn

from bastion.mock.app import build_mock_app
from bastion.mock.server import DEFAULT_HOST, mock_config
from bastion.mock.settings import MockSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8789)
    parser.add_argument("--cert", required=True, help="PEM certificate (chain) of the server")
    parser.add_argument("--key", required=True, help="PEM private key of the server")
    args = parser.parse_args()
    # The settings `bastion mock` uses by default (run_mock: scenario ok, delay and retry 1 s).
    settings = MockSettings(scenario="ok", delay=1.0, retry_after=1.0)
    config = mock_config(build_mock_app(settings), DEFAULT_HOST, args.port)
    config.ssl_certfile = args.cert
    config.ssl_keyfile = args.key
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
