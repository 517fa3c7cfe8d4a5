"""Locals named like secrets are recorded as redacted; other names are not."""
password = "hunter2"
API_KEY = "k-123"
username = "ada"


def connect(host, token, user=username):
    db_password = "p@ss"
    passwd = "x"
    client_secret = {"nested": "value"}
    apiKey = 42
    auth_header = "Bearer abc"
    author = "not secret but matches 'auth'"
    credentials = ["a", "b"]
    private_key = b"\x00\x01"
    pass_word = "not redacted"
    keys = {"password": "dict keys are not locals"}

    def check():
        return len(client_secret) + len(pass_word)
    return check() + len(token) + len(db_password + passwd + auth_header + author + user) \
        + len(credentials) + len(private_key) + apiKey + len(keys)


print(connect("db", token="t0k"))
print(len(password), len(API_KEY))
