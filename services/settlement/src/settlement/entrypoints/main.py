from sanalpos_common.service import run_service
from settlement.bootstrap import bootstrap


def main() -> None:
    run_service(bootstrap)


if __name__ == "__main__":
    main()
