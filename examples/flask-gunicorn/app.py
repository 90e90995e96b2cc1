"""The demo app of the classic blue/green recipe: Flask, served by gunicorn.

bgproxy runs gunicorn with PORT set to the color's port and BLUEGREEN (see
bgproxy.json) to the color, so the answer tells which copy served it.
"""
import os

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello 0-downtime %s World!\n" % os.environ.get("BLUEGREEN", "unknown")
