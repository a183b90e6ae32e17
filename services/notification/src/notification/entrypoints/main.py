import asyncio

from sanalpos_common.runtime import serve

from notification.bootstrap import bootstrap


async def _run() -> None:
    platform = await bootstrap()
    await serve(platform.runtime)


def main() -> None:
    asyncio.run(_run())


if __name__ == "__main__":
    main()
