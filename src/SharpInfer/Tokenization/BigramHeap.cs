namespace SharpInfer.Tokenization;

/// <summary>
/// A binary min-heap of merge candidates, ordered by <typeparamref name="TOrder"/> (a struct, so the comparison is
/// inlined). Which of two candidates with equal keys comes first does not matter to the merge loops: a still-valid
/// candidate has a unique key (its left symbol is unique), the others are skipped as stale.
/// </summary>
internal sealed class BigramHeap<T, TOrder> where T : struct where TOrder : struct, IComparer<T>
{
    private T[] _items = new T[64];
    private int _count;

    public int Count => _count;

    public void Clear() => _count = 0;

    public void Push(in T item)
    {
        if (_count == _items.Length) Array.Resize(ref _items, _items.Length * 2);
        var order = default(TOrder);
        int i = _count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (order.Compare(item, _items[parent]) >= 0) break;
            _items[i] = _items[parent];
            i = parent;
        }
        _items[i] = item;
    }

    public bool TryPop(out T top)
    {
        if (_count == 0)
        {
            top = default;
            return false;
        }
        top = _items[0];
        var last = _items[--_count];
        if (_count == 0) return true;
        var order = default(TOrder);
        int i = 0;
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= _count) break;
            if (child + 1 < _count && order.Compare(_items[child + 1], _items[child]) < 0) child++;
            if (order.Compare(_items[child], last) >= 0) break;
            _items[i] = _items[child];
            i = child;
        }
        _items[i] = last;
        return true;
    }
}
