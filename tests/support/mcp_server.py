"""A small stdio MCP server the tests start: one deterministic order-status tool."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer(name="orders")


@server.tool()
def order_status(order_id: str) -> str:
    """Looks up the delivery status of an order by its id."""
    return f"order {order_id} shipped on Monday"


if __name__ == "__main__":
    server.run("stdio")
