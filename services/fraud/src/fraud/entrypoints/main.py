from fraud.bootstrap import bootstrap
from sanalpos_common.service import run_service


def main() -> None:
    run_service(bootstrap)


if __name__ == "__main__":
    main()
