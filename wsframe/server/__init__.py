"""The server on the loop: routes, endpoints, rooms, admission, heartbeats, shutdown."""
from wsframe.server.connection import Endpoint, ServerConnection
from wsframe.server.rooms import Room, Rooms
from wsframe.server.server import Heartbeat, HttpResponse, Server, ServerSettings

__all__ = ["Server", "ServerSettings", "Heartbeat", "HttpResponse", "Endpoint",
           "ServerConnection", "Room", "Rooms"]
