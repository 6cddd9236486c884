package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// OpenAPI is the API's OpenAPI 3 document (api/openapi.yaml), the source
// of truth for its routes, parameters and bodies; TestOpenAPI keeps it
// equal to the registered routes and checks real answers against it.
//
//go:embed openapi.yaml
var OpenAPI []byte

// LoadOpenAPI parses and validates the embedded document.
func LoadOpenAPI() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("api/openapi.yaml: %w", err)
	}
	return doc, nil
}

// openAPIJSON is the document as JSON, made once per server.
type openAPIJSON struct {
	once sync.Once
	b    []byte
	err  error
}

func (o *openAPIJSON) get() ([]byte, error) {
	o.once.Do(func() {
		doc, err := LoadOpenAPI()
		if err != nil {
			o.err = err
			return
		}
		o.b, o.err = json.Marshal(doc)
	})
	return o.b, o.err
}

// openAPI: GET /v1/openapi.json.
func (s *server) openAPI(w http.ResponseWriter, r *http.Request) {
	b, err := s.spec.get()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(append(b, '\n'))
}
