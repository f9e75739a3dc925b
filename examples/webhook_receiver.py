# A webhook receiver for mailbeacon in plain Python (no packages): checks each request's
# Standard Webhooks signature and prints every notice once.
#   MAILBEACON_WEBHOOK_SECRET=whsec_... PORT=8000 python3 webhook_receiver.py
import base64, hashlib, hmac, http.server, json, os, time

KEY = base64.b64decode(os.environ["MAILBEACON_WEBHOOK_SECRET"].removeprefix("whsec_"))
seen = set()  # notices come at least once: keep the ids you have handled (in your database)


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        msg_id, ts = self.headers["webhook-id"], self.headers["webhook-timestamp"]
        signed = f"{msg_id}.{ts}.".encode() + body
        expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
        given = [s[3:] for s in self.headers["webhook-signature"].split() if s.startswith("v1,")]
        if abs(time.time() - int(ts)) > 300 or not any(hmac.compare_digest(expected, s) for s in given):
            self.send_response(401)
            self.end_headers()
            return
        doc = json.loads(body)
        for notice in doc["data"] if doc["type"] == "batch" else [doc]:
            if notice["id"] not in seen:
                seen.add(notice["id"])
                print(notice["type"], json.dumps(notice["data"]), flush=True)
        self.send_response(204)  # any 2xx: delivered; anything else is retried
        self.end_headers()


http.server.HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Receiver).serve_forever()
