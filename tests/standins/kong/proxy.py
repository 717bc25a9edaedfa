"""Proxy listener of the Kong 3.9 stand-in node (test double, NOT Kong).

Placeholder: answers 404 {"message":"no Route matched with those values"}
(UNCONFIRMED text, from memory of kong/router) for every request.
"""

import admin_api


class Proxy:
    def __init__(self, node):
        self.node = node

    def handle(self, method, path, query, headers, body):
        self.node.count()
        return 404, {"message": "no Route matched with those values"}


def make_server(host, port, node):
    return admin_api.make_server(host, port, node.version, api=Proxy(node), node=node)
