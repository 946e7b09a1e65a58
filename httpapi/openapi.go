package httpapi

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPI is the OpenAPI 3 document of the HTTP API. TestOpenAPIMatchesRoutes
// fails when a route is missing from it or it describes one that is not
// served, and when its schemas and the client package's types disagree.
//
//go:embed openapi.json
var openAPI []byte

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPI)))
	w.Write(openAPI)
}
