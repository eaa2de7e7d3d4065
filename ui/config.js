// Written at deploy time. Every API call goes to apiBase + "/api/v1/...":
// "" means the same origin as this page (the local stack serves the UI and
// the API together); otherwise the API's origin plus any stage prefix, e.g.
// "https://abc123.execute-api.us-east-1.amazonaws.com/prod" (no trailing slash needed).
window.BOATYARD_CONFIG = {apiBase: ""};
