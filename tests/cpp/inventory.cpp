// A small libpqxx program for tests/cpp: counts a shop's stock through a connection opened in an inline
// helper (open_stock_db, always inlined, even at -O2 -g: the report must still name its line). Mode
// "leak" forgets the connection; "fixed" deletes it. Connection settings come from PGHOST and friends.
#include <pqxx/pqxx>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace shop {

// Opens the stock database. Inlined into its caller: no frame of its own on the stack.
[[gnu::always_inline]] inline pqxx::connection *open_stock_db(const std::string &app)
{
    return new pqxx::connection("application_name=" + app); // OPEN-LINE
}

int count_stock(bool fixed)
{
    pqxx::connection *c = open_stock_db("inventory"); // CALL-LINE
    int n;
    {
        pqxx::nontransaction w(*c);
        n = w.exec("SELECT 3").front()[0].as<int>();
    }
    if (fixed)
        delete c;
    return n;
}

} // namespace shop

int main(int argc, char **argv)
{
    if (argc != 2 || (std::strcmp(argv[1], "leak") != 0 && std::strcmp(argv[1], "fixed") != 0)) {
        std::fprintf(stderr, "usage: %s leak|fixed\n", argv[0]);
        return 2;
    }
    std::printf("%d\n", shop::count_stock(std::strcmp(argv[1], "fixed") == 0));
    return 0;
}
