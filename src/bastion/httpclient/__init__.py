"""Bastion's own upstream HTTP/1.1 client on asyncio + httptools, a `bastion.upstream.Transport`."""

from bastion.httpclient.transport import LeanReply, LeanTransport

__all__ = ["LeanReply", "LeanTransport"]
