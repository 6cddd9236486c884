package aliyunapi

import (
	"fmt"
	"net/http"
)

// Error is an answer in Aliyun's error envelope: the HTTP status and the
// Code and Message that the SDKs turn into their errors.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// errorBody is the JSON body of every error, as Aliyun's gateway writes
// it and the SDKs read it.
type errorBody struct {
	RequestId string `json:"RequestId"`
	HostId    string `json:"HostId"`
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	Recommend string `json:"Recommend"`
}

func newError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Common errors.

func errMissing(name string) *Error {
	return newError(http.StatusBadRequest, "MissingParameter",
		"The input parameter %q that is mandatory for processing this request is not supplied.", name)
}

func errMissingCode(code, name string) *Error {
	return newError(http.StatusBadRequest, code,
		"The input parameter %q that is mandatory for processing this request is not supplied.", name)
}

func errInvalid(name, format string, args ...any) *Error {
	return newError(http.StatusBadRequest, "InvalidParameter",
		"The specified parameter %q is not valid: %s", name, fmt.Sprintf(format, args...))
}

func errInternal(format string, args ...any) *Error {
	return newError(http.StatusInternalServerError, "InternalError",
		"The request processing has failed due to some unknown error, exception or failure: %s", fmt.Sprintf(format, args...))
}

func errRouteEntryStatus() *Error {
	return newError(http.StatusBadRequest, "IncorrectRouteEntryStatus",
		"Some route entry status blocked this operation: the route table has route entries in the Pending state; retry once they are Available.")
}
