package reauth

import (
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parsePackage parses the package's own (non-test) files with comments.
func parsePackage(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		require.NoError(t, err)
		require.Equal(t, "reauth", f.Name.Name, name)
		files = append(files, f)
	}
	require.NotEmpty(t, files)
	return fset, files
}

// TestGoDocShowsNoUnexportedNames: go doc prints the declarations of exported
// variables and constants; none may show a name the reader cannot use.
func TestGoDocShowsNoUnexportedNames(t *testing.T) {
	fset, files := parsePackage(t)
	unexported := map[string]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && !d.Name.IsExported() {
					unexported[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							unexported[s.Name.Name] = true
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if !n.IsExported() {
								unexported[n.Name] = true
							}
						}
					}
				}
			}
		}
	}
	ident := regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	// The types in exported signatures and exported fields.
	// structFields: skip unexported fields, which go doc hides.
	checkTypes := func(where string, fields *ast.FieldList, structFields bool) {
		if fields == nil {
			return
		}
		for _, f := range fields.List {
			if structFields && len(f.Names) > 0 && !f.Names[0].IsExported() {
				continue
			}
			var b strings.Builder
			require.NoError(t, printer.Fprint(&b, fset, f.Type))
			for _, name := range ident.FindAllString(b.String(), -1) {
				assert.False(t, unexported[name], "go doc shows %s in %s", name, where)
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() || d.Recv != nil && !exportedReceiver(d.Recv) {
					continue
				}
				checkTypes(d.Name.Name, d.Type.Params, false)
				checkTypes(d.Name.Name, d.Type.Results, false)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					ts, ok := s.(*ast.TypeSpec)
					if !ok || !ts.Name.IsExported() {
						continue
					}
					switch tt := ts.Type.(type) {
					case *ast.StructType:
						checkTypes(ts.Name.Name, tt.Fields, true)
					case *ast.InterfaceType:
						for _, m := range tt.Methods.List {
							if ft, ok := m.Type.(*ast.FuncType); ok {
								checkTypes(ts.Name.Name, ft.Params, false)
								checkTypes(ts.Name.Name, ft.Results, false)
							}
						}
					}
				}
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || (g.Tok != token.VAR && g.Tok != token.CONST) {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				if !vs.Names[0].IsExported() {
					continue
				}
				var b strings.Builder
				bare := *vs // what go doc shows of the declaration, without comments
				bare.Doc, bare.Comment = nil, nil
				require.NoError(t, printer.Fprint(&b, fset, &bare))
				// String literals may say anything.
				text := regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`").ReplaceAllString(b.String(), `""`)
				for _, name := range ident.FindAllString(text, -1) {
					assert.False(t, unexported[name], "go doc shows %s in %s", name, vs.Names[0].Name)
				}
			}
		}
	}
}

// TestExportedStructFieldsAreDocumented: every exported field of an exported
// struct has a comment, above it or at the end of its line.
func TestExportedStructFieldsAreDocumented(t *testing.T) {
	fset, files := parsePackage(t)
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !ts.Name.IsExported() {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			for _, field := range st.Fields.List {
				for _, name := range field.Names {
					if name.IsExported() {
						assert.True(t, field.Doc != nil || field.Comment != nil,
							"%s: %s.%s has no comment", fset.Position(field.Pos()), ts.Name.Name, name.Name)
					}
				}
			}
			return true
		})
	}
}

// exportedReceiver reports whether a method's receiver type is exported.
func exportedReceiver(recv *ast.FieldList) bool {
	t := recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}
