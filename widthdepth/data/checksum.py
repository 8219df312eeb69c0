"""Print the content checksum of an image folder or archive, for `data.sha256` in params.yaml:

python -m widthdepth.data.checksum ../shared/datasets/cifar10-jpeg.zip
"""

from __future__ import annotations

import argparse
from pathlib import Path

from widthdepth.data.readers import content_checksum
from widthdepth.stage import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("place", type=Path, help="an image folder, or a .zip or .tar(.gz) of one")
    print(content_checksum(parser.parse_args().place))


if __name__ == "__main__":
    run(main)
