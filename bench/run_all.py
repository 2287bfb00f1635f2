"""`make bench`: every benchmark in turn; each writes bench/results/<name>.json."""

from __future__ import annotations

from bench import (
    asr,
    console,
    console_live,
    duplicates,
    filing,
    merkle,
    nlu,
    open311,
    phone,
    soak,
    telegram,
    votes,
    webchat,
)


def main() -> None:
    nlu.main()
    filing.main()
    console.main()
    console_live.main()
    webchat.main()
    telegram.main()
    asr.main()
    phone.main()
    merkle.main()
    votes.main()
    open311.main()
    duplicates.main()
    soak.main([])  # last: it needs Redis too, and takes about 7 minutes


if __name__ == "__main__":
    main()
