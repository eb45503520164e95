"""tuspy (the PyPI tus client) against Sluice, driven by tuspy.test.mjs.

Usage: tuspy_client.py ENDPOINT FILE URL_STORE STOP_AT CHUNK_SIZE

1. A sync uploader (requests) with per-chunk SHA-1 checksums and URL storage stops at STOP_AT
   bytes, as if the process had died.
2. A new sync uploader finds the upload by the file's fingerprint in the URL storage, asks the
   server for its offset (HEAD) and finishes it.
3. The async uploader (aiohttp) uploads the same file again as a new upload, in one go.

Prints one JSON object with what each step saw.
"""

import asyncio
import json
import sys

from tusclient import client
from tusclient.storage import filestorage


def main():
    endpoint, path, store_path, stop_at, chunk_size = sys.argv[1:6]
    stop_at, chunk_size = int(stop_at), int(chunk_size)
    tus = client.TusClient(endpoint)
    storage = filestorage.FileStorage(store_path)
    metadata = {"filename": "tuspy-upload.bin", "filetype": "application/octet-stream"}

    first = tus.uploader(path, chunk_size=chunk_size, metadata=metadata, store_url=True,
                         url_storage=storage, upload_checksum=True)
    first.upload(stop_at=stop_at)
    stopped = {"url": first.url, "offset": first.offset}

    again = tus.uploader(path, chunk_size=chunk_size, metadata=metadata, store_url=True,
                         url_storage=storage, upload_checksum=True)
    resumed = {"url": again.url, "offset": again.offset}
    again.upload()
    finished = {"url": again.url, "offset": again.offset}

    async_uploader = tus.async_uploader(path, chunk_size=chunk_size,
                                        metadata={"filename": "tuspy-async.bin"})
    asyncio.run(async_uploader.upload())
    in_one_go = {"url": async_uploader.url, "offset": async_uploader.offset}

    print(json.dumps({"stopped": stopped, "resumed": resumed, "finished": finished,
                      "async": in_one_go}))


if __name__ == "__main__":
    main()
