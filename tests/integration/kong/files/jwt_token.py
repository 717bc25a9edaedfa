"""Test helper for tests/integration/kong/kong_gateway.yml (not part of the collection).

    jwt_token.py keygen DIR                          # DIR/rsa.pem (private) and DIR/rsa.pub (PEM public key)
    jwt_token.py sign ALG ISS EXP_IN SECRET|KEYFILE  # prints a JWT with iss=ISS and exp=now+EXP_IN

HS256 signs with the secret, RS256 with the private key file (the cryptography package of the test venv).
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def keygen(directory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(os.path.join(directory, "rsa.pem"), "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(os.path.join(directory, "rsa.pub"), "wb") as handle:
        handle.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))


def sign(alg, iss, exp_in, key):
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps({"iss": iss, "exp": int(time.time()) + int(exp_in)}).encode())
    signed = ("%s.%s" % (head, body)).encode()
    if alg == "HS256":
        signature = hmac.new(key.encode(), signed, hashlib.sha256).digest()
    else:
        with open(key, "rb") as handle:
            private = serialization.load_pem_private_key(handle.read(), password=None)
        signature = private.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    return "%s.%s.%s" % (head, body, b64(signature))


if __name__ == "__main__":
    if sys.argv[1] == "keygen":
        keygen(sys.argv[2])
    else:
        print(sign(*sys.argv[2:6]))
