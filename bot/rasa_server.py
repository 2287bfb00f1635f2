"""Starts the Rasa engine (its own venv) with its HTTP API locked by RASA_AUTH_TOKEN and the action token.

Rasa reads no settings of ours, so this reads them and execs `rasa run`: the API token goes on Rasa's
command line (`--auth-token`, the only way Rasa takes it) and the action server's token into the
environment that endpoints.yml interpolates. Run it with the project's venv: `python -m bot.rasa_server`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from civic.settings import PROJECT_ROOT, get_settings

RASA = PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa"


def rasa_command(*, port: int, endpoints: str, auth_token: str, host: str = "127.0.0.1") -> list[str]:
    """`rasa run` with the API enabled only behind the token, the REST channel, on `host` (loopback)."""
    return [
        str(RASA),
        "run",
        "--enable-api",
        "--auth-token",
        auth_token,
        "--cors",
        "",
        "-i",
        host,
        "--port",
        str(port),
        "--model",
        "models",
        "--endpoints",
        endpoints,
        "--credentials",
        "credentials.yml",
    ]


def rasa_environment(base: dict[str, str]) -> dict[str, str]:
    """`base` plus what endpoints.yml reads: the action server's address and token."""
    settings = get_settings()
    return base | {
        "ACTION_SERVER_URL": base.get("ACTION_SERVER_URL") or "http://127.0.0.1:5055/webhook",
        "ACTION_SERVER_TOKEN": settings.action_server_token,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5005)
    parser.add_argument("--endpoints", default="endpoints.yml")
    args = parser.parse_args(argv)
    command = rasa_command(port=args.port, endpoints=args.endpoints, auth_token=get_settings().rasa_auth_token)
    os.chdir(Path(PROJECT_ROOT))  # Rasa finds models/ and its yml files from the working directory
    os.execve(command[0], command, rasa_environment(dict(os.environ)))


if __name__ == "__main__":
    main()
